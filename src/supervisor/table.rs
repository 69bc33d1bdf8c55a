//! The service table: every service the supervisor knows, under a stable [`Id`].
//!
//! An id names the same service until it is removed from the table, whatever reloads do: a
//! reload adds and removes entries and never renumbers. A removed entry's slot is reused by a
//! later service, but with the next generation, so an id held by anything that outlived the
//! service (a poll token, a reaped pid's owner, a log follower) finds it gone rather than finding
//! another service. Every lookup returns `Option`: nothing on the loop's path can index out of
//! range.
//!
//! The start order is a separate list of ids: the current configuration's order (dependencies
//! first), then the services a reload removed that are still stopping.

/// A service's stable key in the [`Table`]: a slot and the generation it had when the service
/// was put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    slot: u32,
    generation: u32,
}

impl Id {
    /// The id as one number, for holders outside the supervisor (log followers).
    pub fn key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }

    /// The slot, for tests that check a slot was reused.
    #[cfg(test)]
    pub fn slot(self) -> u32 {
        self.slot
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Services by stable id, and their order.
pub struct Table<T> {
    slots: Vec<Slot<T>>,
    /// Free slots, reused last-freed first.
    free: Vec<u32>,
    /// Every id in the table, in start order.
    order: Vec<Id>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            order: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    /// Adds `value` at the end of the order; returns its new id.
    pub fn insert(&mut self, value: T) -> Id {
        let id = match self.free.pop() {
            Some(slot) => {
                let entry = self.slots.get_mut(slot as usize);
                let generation = entry.map_or(0, |e| {
                    e.generation = e.generation.wrapping_add(1);
                    e.value = Some(value);
                    e.generation
                });
                Id { slot, generation }
            }
            None => {
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    generation: 0,
                    value: Some(value),
                });
                Id {
                    slot,
                    generation: 0,
                }
            }
        };
        self.order.push(id);
        id
    }

    /// Takes service `id` out of the table; its id is never valid again.
    pub fn remove(&mut self, id: Id) -> Option<T> {
        let entry = self
            .slots
            .get_mut(id.slot as usize)
            .filter(|e| e.generation == id.generation)?;
        let value = entry.value.take()?;
        self.free.push(id.slot);
        self.order.retain(|&o| o != id);
        Some(value)
    }

    pub fn get(&self, id: Id) -> Option<&T> {
        self.slots
            .get(id.slot as usize)
            .filter(|e| e.generation == id.generation)
            .and_then(|e| e.value.as_ref())
    }

    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|e| e.generation == id.generation)
            .and_then(|e| e.value.as_mut())
    }

    /// The ids in start order.
    pub fn order(&self) -> &[Id] {
        &self.order
    }

    /// The id at position `i` of the start order.
    pub fn nth(&self, i: usize) -> Option<Id> {
        self.order.get(i).copied()
    }

    /// Sets the start order: `first` (every id in it must be in the table), then the table's
    /// other ids in their current order.
    pub fn reorder(&mut self, first: Vec<Id>) {
        let placed: std::collections::HashSet<Id> = first.iter().copied().collect();
        let rest: Vec<Id> = self
            .order
            .iter()
            .copied()
            .filter(|id| !placed.contains(id))
            .collect();
        self.order = first;
        self.order.retain(|&id| {
            self.slots
                .get(id.slot as usize)
                .is_some_and(|e| e.generation == id.generation && e.value.is_some())
        });
        self.order.extend(rest);
    }

    /// The services in start order.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &T)> {
        self.order
            .iter()
            .filter_map(|&id| self.get(id).map(|v| (id, v)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(|e| e.value.as_mut())
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_outlives_its_service_as_gone_not_as_another() {
        let mut t = Table::default();
        let a = t.insert("a");
        let b = t.insert("b");
        assert_eq!(t.remove(a), Some("a"));
        let c = t.insert("c");
        assert_eq!(
            t.get(a),
            None,
            "a's slot now holds c, under a new generation"
        );
        assert_eq!(t.get(c), Some(&"c"));
        assert_eq!(t.get(b), Some(&"b"));
        assert_eq!(t.remove(a), None);
        assert_eq!(t.order(), [b, c]);
    }

    #[test]
    fn reorder_puts_the_given_order_first_and_keeps_the_rest() {
        let mut t = Table::default();
        let a = t.insert(1);
        let b = t.insert(2);
        let c = t.insert(3);
        t.reorder(vec![c, a]);
        assert_eq!(t.order(), [c, a, b]);
        let values: Vec<i32> = t.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [3, 1, 2]);
    }

    #[test]
    fn keys_differ_across_generations() {
        let mut t = Table::default();
        let a = t.insert(());
        t.remove(a);
        let b = t.insert(());
        assert_ne!(a.key(), b.key());
    }
}
