"""Steps of derivations/lmm_blup.py quoted by ``shrinkage report --formula``.

GENERATED FILE by shrinkage.report_excerpts (run by `shrinkage build`): do not edit.
"""

SOURCE = 'lmm_blup'
STEPS = 23
NUMBERS = {  # label -> step number in docs/lmm_blup.pdf
    'blup_stats': 10,
    'blup_theta': 11,
    'condvar_stats': 15,
    'condvar_theta': 16,
    'shrinkage_form': 20,
    'shrinkage_matrix': 19,
    'shrinkage_matrix-1': 18,
    'shrinkage_one_way': 23,
}
EXCERPTS = {
    'blup': "\\begin{align}\n\\intertext{\\stepnote{lmm\\_blup~10}{In the cross-products of the group's data.}{SymPy: proved; mpmath: 12 random points at $q = 1, 2, 3, 4$, random $n_j$ and $p$, 50 digits; SymPy exact with explicit matrices at $q = 1$ ($n_j = 2$, $p = 1$), $q = 2$ ($n_j = 3$, $p = 1$)}}\n\\hat{\\mathbf b}_j = \\operatorname*{arg\\,max}_{\\mathbf b_j} \\log p(\\mathbf y_j, \\mathbf b_j) &= \\frac{1}{\\sigma^2} \\left(\\frac{1}{\\sigma^2} \\mathbf Z_j^{\\mathsf T}\\mathbf Z_j + \\mathbf D^{-1}\\right)^{-1} \\left(\\mathbf Z_j^{\\mathsf T}\\mathbf y_j - \\mathbf Z_j^{\\mathsf T}\\mathbf X_j \\boldsymbol\\beta\\right) \\tag{\\textsf{lmm\\_blup}~10}\\label{lmm_blup:10}\n\\end{align}",
    'condvar': '\\begin{align}\n\\intertext{\\stepnote{lmm\\_blup~15}{In the cross-products.}{SymPy: proved; mpmath: 12 random points at $q = 1, 2, 3, 4$, random $n_j$ and $p$, 50 digits; SymPy exact with explicit matrices at $q = 1$ ($n_j = 2$, $p = 1$), $q = 2$ ($n_j = 3$, $p = 1$)}}\n\\operatorname{Var}(\\mathbf b_j \\mid \\mathbf y_j) &= \\left(\\frac{1}{\\sigma^2} \\mathbf Z_j^{\\mathsf T}\\mathbf Z_j + \\mathbf D^{-1}\\right)^{-1} \\tag{\\textsf{lmm\\_blup}~15}\\label{lmm_blup:15}\n\\end{align}',
    'shrinkage': "\\begin{align}\n\\intertext{\\stepnote{lmm\\_blup~18}{The group's own least-squares estimate of $\\mathbf b_j$ (given $\\boldsymbol\\beta$): regress $\\mathbf y_j - \\mathbf X_j\\boldsymbol\\beta$ on $\\mathbf Z_j$ alone. It needs $\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j$ invertible ($n_j \\ge q$).}{definition}}\n\\tilde{\\mathbf b}_j &\\coloneqq \\left(\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j\\right)^{-1} \\left(\\mathbf Z_j^{\\mathsf T}\\mathbf y_j - \\mathbf Z_j^{\\mathsf T}\\mathbf X_j \\boldsymbol\\beta\\right) \\tag{\\textsf{lmm\\_blup}~18}\\label{lmm_blup:18}\\\\\n\\intertext{\\stepnote{lmm\\_blup~19}{The matrix shrinkage factor: $\\mathbf D$ against $\\mathbf D$ plus the sampling covariance $\\sigma^2(\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j)^{-1}$ of the group's own estimate.}{definition}}\n\\boldsymbol\\Lambda_j &\\coloneqq \\mathbf D \\left(\\mathbf D + \\sigma^2 \\left(\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j\\right)^{-1}\\right)^{-1} \\tag{\\textsf{lmm\\_blup}~19}\\label{lmm_blup:19}\n\\end{align}",
    'form': "\\begin{align}\n\\intertext{\\stepnote{lmm\\_blup~20}{The BLUP is the group's own estimate shrunk by $\\boldsymbol\\Lambda_j$: $(\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j/\\sigma^2 + \\mathbf D^{-1})^{-1}\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j/\\sigma^2 = \\mathbf D(\\mathbf D + \\sigma^2(\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j)^{-1})^{-1}$.}{SymPy: proved; mpmath: 12 random points at $q = 1, 2, 3, 4$, random $n_j$ and $p$, 50 digits; SymPy exact with explicit matrices at $q = 1$ ($n_j = 2$, $p = 1$), $q = 2$ ($n_j = 3$, $p = 1$)}}\n\\hat{\\mathbf b}_j &= \\boldsymbol\\Lambda_j \\tilde{\\mathbf b}_j \\tag{\\textsf{lmm\\_blup}~20}\\label{lmm_blup:20}\n\\end{align}",
    'one_way': '\\begin{align}\n\\intertext{\\stepnote{lmm\\_blup~23}{For $q = 1$, $\\mathbf Z_j = \\mathbf 1$ ($\\mathbf Z_j^{\\mathsf T}\\mathbf Z_j = n_j$) and $\\mathbf D = \\sigma_b^2$ it is the one-way shrinkage factor.}{SymPy: proved; mpmath: 12 random points at $q = 1$, random $n_j$ and $p = 1$, 50 digits; SymPy exact with explicit matrices at $q = 1$ ($n_j = 1$, $p = 1$), $q = 1$ ($n_j = 2$, $p = 1$), $q = 1$ ($n_j = 3$, $p = 1$)}}\n\\lambda_j &= \\frac{\\sigma_b^2}{\\sigma_b^2 + \\frac{\\sigma^2}{n_j}} \\tag{\\textsf{lmm\\_blup}~23}\\label{lmm_blup:23}\n\\end{align}',
}
