"""Authentication chain, RBAC/Node authorization, SubjectAccessReview, rate limiting, audit."""
