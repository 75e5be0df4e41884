"""Models: ResNet and small CNNs for encrypted inference (issue 3; not built yet)."""
