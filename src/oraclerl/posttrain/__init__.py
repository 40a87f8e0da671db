"""Post-training: supervised pre-training and policy gradients with outcome and process rewards."""
