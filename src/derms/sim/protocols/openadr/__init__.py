"""Simulated OpenADR VENs: C&I loads with shed capability speaking 2.0b or 3.0.1 on loopback."""
