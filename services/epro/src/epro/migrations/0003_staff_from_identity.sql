-- Staff are identified by access tokens from the identity issuer (issue 15, decision 0071):
-- ePRO keeps no staff accounts or token hashes any more. A correction's author stays on
-- the response version and in the audit trail.
DROP TABLE staff;
