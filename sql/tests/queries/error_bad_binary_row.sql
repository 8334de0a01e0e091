SELECT sum(ad_id) FROM bad_rows
