"""Pure lesson-generation domain: request rules, lesson schema, prompts, budgets, cache keys."""
