"""Image-side conditioning: the CLIP vision tower and its preprocessing, unCLIP noise
augmentation, T2I style adapters, hypernetworks, GLIGEN, PhotoMaker, and tiny files of each for
tests."""
