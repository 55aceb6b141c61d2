"""The referrals service's GraphQL API (slips, thanks, one-to-ones, needs,
reports): being built; the service runs and reacts, its GraphQL fields come
next."""
