// The admin API for components deep in the page (cards); null when the viewer is not an admin,
// so a component that reads it also knows whether to show admin controls at all.
import { createContext, useContext } from 'react'
import type { AdminApi } from './api.js'

export const AdminContext = createContext<AdminApi | null>(null)

export const useAdmin = (): AdminApi | null => useContext(AdminContext)
