SELECT _key, count(*) AS n FROM clicks_json WHERE _key = '3' GROUP BY _key
