"""ditkit samplers (grows in later issues)."""
