"""The job machinery every job family shares: claim, run, report progress, finish."""
