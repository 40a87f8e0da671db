"""The bottom layer every other package may import: typed configs and validation, device choice and CPU
threads.

Nothing here imports from the rest of oraclerl except :mod:`oraclerl.errors`.
"""
