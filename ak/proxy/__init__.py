"""Local addresses for pods on the AK node, and the listeners behind them."""
