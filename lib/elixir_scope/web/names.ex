defmodule ElixirScope.Web.Names do
  @moduledoc false
  # Pids, modules and registered names from text sent by a client (an MCP tool
  # argument, a UI request). Never creates an atom: names resolve only to atoms that
  # exist already (`String.to_existing_atom/1`), and pids are parsed strictly.

  @pid ~r/\A(?:#PID)?<(\d{1,9})\.(\d{1,9})\.(\d{1,9})>\z/

  @doc false
  # "#PID<0.123.0>" or "<0.123.0>" -> {:ok, pid}; anything else -> :error.
  def pid(text) when is_binary(text) do
    case Regex.run(@pid, text, capture: :all_but_first) do
      [a, b, c] ->
        try do
          {:ok, :erlang.list_to_pid(~c"<#{a}.#{b}.#{c}>")}
        rescue
          ArgumentError -> :error
        end

      nil ->
        :error
    end
  end

  def pid(_), do: :error

  @doc false
  # The live process registered under `text` ("MyApp.Queue", "Elixir.MyApp.Queue",
  # "logger"), or nil.
  def registered(text) do
    Enum.find_value(atom_candidates(text), fn atom ->
      case Process.whereis(atom) do
        pid when is_pid(pid) -> pid
        _ -> nil
      end
    end)
  end

  @doc false
  # A loaded module from "MyApp.Worker", "Elixir.MyApp.Worker", ":ets" or "ets", or nil.
  def module(text), do: Enum.find(atom_candidates(text), &Code.ensure_loaded?/1)

  @doc false
  # The existing atoms `text` may name: "MyApp.X" is Elixir.MyApp.X (or an atom
  # spelled so), ":ets" and "ets" are ets.
  def atom_candidates(text) do
    text = String.trim_leading(text, ":")

    names =
      case text do
        "Elixir." <> _ -> [text]
        <<c, _::binary>> when c in ?A..?Z -> ["Elixir." <> text, text]
        _ -> [text]
      end

    for name <- names, atom = existing_atom(name), do: atom
  end

  defp existing_atom(name) do
    String.to_existing_atom(name)
  rescue
    ArgumentError -> nil
  end
end
