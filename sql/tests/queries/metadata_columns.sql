SELECT _partition, _offset, _timestamp, _key, ad_id FROM clicks WHERE _partition = 1 AND _offset <= 2 ORDER BY _offset
