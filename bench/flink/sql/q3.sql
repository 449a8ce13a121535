-- q3 local item suggestion: auctions in category 10 joined (all-time, inner: a regular
-- streaming join, append-only) with their seller when the seller's state is OR, ID or CA.
-- name|city|state|auction_id
SELECT P.name, P.city, P.state, A.id AS auction_id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')
