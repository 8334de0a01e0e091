SELECT _partition, _offset, ad_id FROM clicks WHERE _partition IN (1, 3) AND _offset < 2 ORDER BY _partition, _offset
