"""Dataset statistics shared by the model cfgs and the pretrained-tag registry (a leaf module: imports nothing)."""

# CIFAR-10 training-set channel mean / std (as fb.resnet.torch and most CIFAR code normalize); the CIFAR-layout
# models' default preprocessing, and that of the digits tags, which are upsampled and replicated to RGB.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

# Fashion-MNIST: mean / std of the pixels of train/recipes/fashion_mnist.yaml's training split (10,000 official
# training images, gray replicated to 3 channels), rounded as the recipe has them; the preprocessing of the
# Fashion-MNIST tags (tests/test_fashion_cards.py checks them against the recipe).
FASHION_MNIST_MEAN = (0.2858, 0.2858, 0.2858)
FASHION_MNIST_STD = (0.3527, 0.3527, 0.3527)
