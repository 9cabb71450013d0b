defmodule ScopeApp.Cart do
  @moduledoc """
  The GenServer behind the JSON endpoint: a cart of items with a running total. Each
  change is broadcast on the "cart" topic, which the LiveView subscribes to. An add may
  be made slow (`delay_ms`), so that other clients' calls wait in its mailbox.
  """
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  def add(item, price, delay_ms \\ 0),
    do: GenServer.call(__MODULE__, {:add, item, price, delay_ms})

  def show, do: GenServer.call(__MODULE__, :show)
  def clear, do: GenServer.call(__MODULE__, :clear)

  @impl true
  def init(_), do: {:ok, %{items: [], total: 0}}

  @impl true
  def handle_call({:add, item, price, delay_ms}, _from, cart) do
    # a slow add keeps other clients' calls waiting in the mailbox
    if delay_ms > 0, do: Process.sleep(delay_ms)
    cart = %{cart | items: [item | cart.items], total: cart.total + price}
    Phoenix.PubSub.broadcast(ScopeApp.PubSub, "cart", {:cart_changed, cart.total})
    {:reply, cart, cart}
  end

  def handle_call(:show, _from, cart), do: {:reply, cart, cart}
  def handle_call(:clear, _from, _cart), do: {:reply, :ok, %{items: [], total: 0}}
end
