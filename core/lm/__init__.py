"""The language model: the small GPT, its tokenizer, batching, sampling, checkpoints and
pretraining.
"""
