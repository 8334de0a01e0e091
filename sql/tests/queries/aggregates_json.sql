SELECT count(*) AS n, count(DISTINCT ad_id) AS ads, sum(ad_id) AS s, avg(ad_id) AS a, min(user_id) AS lo, max(user_id) AS hi FROM clicks_json
