"""Run one model over evaluation items, the same way for every model: embedding, causal LM, hosted."""
