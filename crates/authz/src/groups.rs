//! Group nesting, resolved: the groups a user belongs to through groups
//! that belong to groups. The store answers the same question in SQL; this
//! is the reference it is tested against, and what tests build principals
//! with.

use std::collections::{HashMap, HashSet, VecDeque};

use roster_domain::GroupId;

/// Every group reachable from `direct` by following `parents` (child →
/// groups it is a member of), each once at its smallest depth (1 for the
/// direct groups), up to `max_depth`. Cycles are harmless. Sorted by depth,
/// then id.
pub fn group_closure(
    direct: &[GroupId],
    parents: &HashMap<GroupId, Vec<GroupId>>,
    max_depth: u32,
) -> Vec<(GroupId, u32)> {
    let mut seen: HashSet<GroupId> = HashSet::new();
    let mut queue: VecDeque<(GroupId, u32)> = VecDeque::new();
    let mut result = Vec::new();
    if max_depth == 0 {
        return result;
    }
    for &group in direct {
        if seen.insert(group) {
            queue.push_back((group, 1));
        }
    }
    while let Some((group, depth)) = queue.pop_front() {
        result.push((group, depth));
        if depth == max_depth {
            continue;
        }
        for &parent in parents.get(&group).into_iter().flatten() {
            if seen.insert(parent) {
                queue.push_back((parent, depth + 1));
            }
        }
    }
    result.sort();
    result.sort_by_key(|&(_, depth)| depth);
    result
}
