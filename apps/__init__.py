"""ditkit apps (grows in later issues)."""
