COPY clicks TO '/tmp/weir-sql-copy.csv'
