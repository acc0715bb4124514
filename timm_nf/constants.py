"""Dataset statistics shared by the model cfgs and the pretrained-tag registry (a leaf module: imports nothing)."""

# CIFAR-10 training-set channel mean / std (as fb.resnet.torch and most CIFAR code normalize); the CIFAR-layout
# models' default preprocessing, and that of the digits tags, which are upsampled and replicated to RGB.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
