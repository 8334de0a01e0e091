SELECT _partition, _offset, _timestamp FROM clicks WHERE _timestamp >= TIMESTAMP '2023-11-14T22:13:52' ORDER BY _timestamp
