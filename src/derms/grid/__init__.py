"""Grid model and constraint engine: network model, power flow, sensitivities, limits,
hosting capacity, dynamic operating envelopes and state estimation."""
