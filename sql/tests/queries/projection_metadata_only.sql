SELECT _partition, count(*) AS n, min(_offset) AS first, max(_offset) AS last FROM clicks GROUP BY _partition ORDER BY _partition
