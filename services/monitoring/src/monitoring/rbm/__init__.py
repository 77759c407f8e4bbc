"""Risk-based monitoring: key risk indicators (KRIs) and automatic discrepancy flags."""
