"""The Spark engine (MARKETING_ML_ENGINE=spark), imported only when it is chosen
(`marketing_ml.storage.engine`): the DuckDB path never loads it or pyspark.

- `session`: this process's Spark session (local, standalone cluster or Spark Connect).
- `tables`: Spark's table operations (`SparkTables`) and its DuckDB-like connection.
- `sql`: the pipeline's SQL (DuckDB's dialect) transpiled to Spark SQL.
"""
