"""Services that combine the store with pure domain logic, shared by more than one daemon."""
