SELECT _partition, _offset FROM clicks_json WHERE _partition = 2 AND _offset BETWEEN 3 AND 5 ORDER BY _offset
