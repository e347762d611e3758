"""Matrix derivations: the linear mixed model with q random terms per group.

Step kinds whose claims are about matrix expressions (shrinkage.matrix.steps), checked
numerically at random sizes and values and symbolically with explicit matrices of
symbols at q = 1, 2; the model's premises (shrinkage.matrix.model) and its quantities
(shrinkage.matrix.notation).
"""
