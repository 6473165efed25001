"""The Spark engine (MARKETING_ML_ENGINE=spark), imported only when it is chosen
(`marketing_ml.storage.engine`): the DuckDB path never loads it or pyspark.

- `session`: this process's Spark session (local, standalone cluster or Spark Connect).
- `spark_tables`: Spark's table operations (`SparkTables`) and its DuckDB-like connection.
- `spark_sql`: the pipeline's SQL (DuckDB's dialect) transpiled to Spark SQL.
"""
