"""Exploration algorithms through the sampling oracles: SpannerSampling, MTSS, OnlineDPO, XPO."""
