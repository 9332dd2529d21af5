"""The command line of each benchmark: options, the call of the library function, and the table it prints.

One module per benchmark, named like its library module in :mod:`finegrained.bench`.
"""
