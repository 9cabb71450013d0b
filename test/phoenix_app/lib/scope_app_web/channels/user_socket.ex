defmodule ScopeAppWeb.UserSocket do
  use Phoenix.Socket

  channel("room:*", ScopeAppWeb.RoomChannel)

  @impl true
  def connect(_params, socket, _connect_info), do: {:ok, socket}

  @impl true
  def id(_socket), do: nil
end

defmodule ScopeAppWeb.RoomChannel do
  use ScopeAppWeb, :channel

  @impl true
  def join("room:" <> _, params, socket),
    do: {:ok, assign(socket, nick: params["nick"], api_token: params["token"])}

  @impl true
  def handle_in("ping", payload, socket), do: {:reply, {:ok, payload}, socket}
end
