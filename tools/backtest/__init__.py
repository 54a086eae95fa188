"""The backtest around tools.replay: inputs, statistics, the HTML report, the parameter sweep."""
