"""Compiled kernels (Cython). Private: use :mod:`cprop` instead."""
