SELECT ad_id, count(*) AS clicks, sum(user_id) AS users_sum, avg(user_id) AS users_avg, min(ts) AS first, max(ts) AS last FROM clicks GROUP BY ad_id ORDER BY clicks DESC, ad_id
