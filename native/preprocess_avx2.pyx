"""The preprocessing kernel of ``preprocess.pyx``, compiled for AVX2 (x86-64 only: setup.py adds ``-mavx2``).

Never imported on a CPU without AVX2: :mod:`edge.kernels` asks the baseline build's ``cpu_has_avx2()`` first.
"""

include "preprocess.pyx"
