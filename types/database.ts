export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

export type Database = {
  public: {
    Tables: {
      emails: {
        Row: {
          attachments: NonNullable<Json>
          body_text: string | null
          body_truncated: boolean
          cc_addresses: Json | null
          flags: string[] | null
          folder: string
          from_address: Json | null
          id: number
          imported_at: string
          in_reply_to: string | null
          internal_date: string | null
          mailbox_id: string
          message_id: string | null
          message_key: string
          parse_error: string | null
          references: string[] | null
          sent_at: string | null
          size_bytes: number | null
          snippet: string | null
          source_truncated: boolean
          subject: string | null
          to_addresses: Json | null
          uid: number
          uid_validity: number
          user_id: string
        }
        Insert: {
          attachments?: NonNullable<Json>
          body_text?: string | null
          body_truncated?: boolean
          cc_addresses?: Json | null
          flags?: string[] | null
          folder: string
          from_address?: Json | null
          id?: never
          imported_at?: string
          in_reply_to?: string | null
          internal_date?: string | null
          mailbox_id: string
          message_id?: string | null
          message_key: string
          parse_error?: string | null
          references?: string[] | null
          sent_at?: string | null
          size_bytes?: number | null
          snippet?: string | null
          source_truncated?: boolean
          subject?: string | null
          to_addresses?: Json | null
          uid: number
          uid_validity: number
          user_id: string
        }
        Update: {
          attachments?: NonNullable<Json>
          body_text?: string | null
          body_truncated?: boolean
          cc_addresses?: Json | null
          flags?: string[] | null
          folder?: string
          from_address?: Json | null
          id?: never
          imported_at?: string
          in_reply_to?: string | null
          internal_date?: string | null
          mailbox_id?: string
          message_id?: string | null
          message_key?: string
          parse_error?: string | null
          references?: string[] | null
          sent_at?: string | null
          size_bytes?: number | null
          snippet?: string | null
          source_truncated?: boolean
          subject?: string | null
          to_addresses?: Json | null
          uid?: number
          uid_validity?: number
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "emails_mailbox_id_fkey"
            columns: ["mailbox_id"]
            isOneToOne: false
            referencedRelation: "mailboxes"
            referencedColumns: ["id"]
          },
        ]
      }
      mailboxes: {
        Row: {
          auth_kind: string
          consecutive_auth_failures: number
          created_at: string
          enabled: boolean
          folders: string[]
          host: string
          id: string
          import_lease_until: string | null
          import_run_id: string | null
          label: string | null
          last_error: string | null
          last_synced_at: string | null
          oauth_provider: string | null
          paused_reason: string | null
          port: number
          reconnect_needed_at: string | null
          tls_mode: string
          updated_at: string
          user_id: string
          username: string
        }
        Insert: {
          auth_kind?: string
          consecutive_auth_failures?: number
          created_at?: string
          enabled?: boolean
          folders?: string[]
          host: string
          id?: string
          import_lease_until?: string | null
          import_run_id?: string | null
          label?: string | null
          last_error?: string | null
          last_synced_at?: string | null
          oauth_provider?: string | null
          paused_reason?: string | null
          port: number
          reconnect_needed_at?: string | null
          tls_mode?: string
          updated_at?: string
          user_id: string
          username: string
        }
        Update: {
          auth_kind?: string
          consecutive_auth_failures?: number
          created_at?: string
          enabled?: boolean
          folders?: string[]
          host?: string
          id?: string
          import_lease_until?: string | null
          import_run_id?: string | null
          label?: string | null
          last_error?: string | null
          last_synced_at?: string | null
          oauth_provider?: string | null
          paused_reason?: string | null
          port?: number
          reconnect_needed_at?: string | null
          tls_mode?: string
          updated_at?: string
          user_id?: string
          username?: string
        }
        Relationships: []
      }
    }
    Views: {
      [_ in never]: never
    }
    Functions: {
      add_mailbox: {
        Args: {
          p_auth_kind?: string
          p_credential: string
          p_folders?: string[]
          p_host: string
          p_label?: string
          p_port: number
          p_tls_mode?: string
          p_username: string
        }
        Returns: string
      }
      disable_auto_sync: { Args: Record<PropertyKey, never>; Returns: boolean }
      enable_auto_sync: {
        Args: { p_every?: string }
        Returns: {
          enabled: boolean
          every: string
          next_run_at: string
        }[]
      }
      get_auto_sync: {
        Args: Record<PropertyKey, never>
        Returns: {
          consecutive_failures: number
          enabled: boolean
          every: string
          last_error: string
          last_error_at: string
          last_outcome: string
          last_outcome_at: string
          last_success_at: string
          next_run_at: string
          paused_reason: string
        }[]
      }
      get_auto_sync_run: {
        Args: { p_run_id: string }
        Returns: {
          created_at: string
          duplicates: number
          error: string
          fetched: number
          finished_at: string
          has_more: boolean
          id: string
          inserted: number
          started_at: string
          status: string
          trigger: string
        }[]
      }
      get_mailbox_states: {
        Args: Record<PropertyKey, never>
        Returns: {
          enabled: boolean
          host: string
          label: string
          last_error: string
          last_synced_at: string
          mailbox_id: string
          needs_user: boolean
          paused_reason: string
          state: string
          username: string
        }[]
      }
      list_auto_sync_runs: {
        Args: { p_limit?: number }
        Returns: {
          created_at: string
          duplicates: number
          error: string
          fetched: number
          finished_at: string
          has_more: boolean
          id: string
          inserted: number
          started_at: string
          status: string
          trigger: string
        }[]
      }
      remove_mailbox: { Args: { p_mailbox_id: string }; Returns: boolean }
      update_mailbox: {
        Args: {
          p_auth_kind?: string
          p_credential?: string
          p_enabled?: boolean
          p_folders?: string[]
          p_host?: string
          p_label?: string
          p_mailbox_id: string
          p_port?: number
          p_tls_mode?: string
          p_username?: string
        }
        Returns: boolean
      }
    }
    Enums: {
      [_ in never]: never
    }
    CompositeTypes: {
      [_ in never]: never
    }
  }
}

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends (DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never) = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends (PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never) = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never

export const Constants = {
  public: {
    Enums: {},
  },
} as const

