SELECT _partition, _offset, ts FROM clicks WHERE _offset >= 8 ORDER BY _partition, _offset
