SELECT _partition, _offset FROM clicks WHERE _partition = 3 LIMIT 3
