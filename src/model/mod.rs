//! The data of each resource: its SQL, rows and operations, under the tenant wall.

pub mod employee_list;
