"""ditkit gaussians (grows in later issues)."""
