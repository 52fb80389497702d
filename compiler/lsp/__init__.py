"""The language server (``fusec lsp``): fusec's full check, completion, hover and navigation in editors.

``server.py`` wires pygls to the modules that answer: ``diagnostics``
(the check, debounced), ``completion``, ``hover``, ``navigation``
(definition, rename, outline) and ``actions`` (quick fixes); ``documents``
and ``references`` read a document tolerantly, ``text`` converts places,
``lexicon`` words the vocabulary. It imports ``errors``, ``vocab``,
``spec`` and ``static``, never TensorFlow. See docs/lsp.md.
"""
