"""Risk, flags, actions and complaints for the market regulator."""
