"""Per-chain transaction models, encodings, signing digests, addresses and parsers.

Pure: no I/O. A chain module turns a request into the exact bytes to sign, assembles the
signed transaction from a signature whoever made it, and parses transactions back.
"""
