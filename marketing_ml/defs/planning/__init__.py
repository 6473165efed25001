"""Planning: response curves, their backtest and the budget plan, with its blocking checks."""
